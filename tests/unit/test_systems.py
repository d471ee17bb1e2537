"""System files: every file loads, the published values resolve, malformed files fail in one line."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from raybench.config.models import System
from raybench.config.names import BENCHMARKS, SCENARIOS
from raybench.config.systems import load_system, system_ids, systems_dir
from raybench.errors import ConfigError

SXM80_X8 = ["SYS-420GP-TNAR_A100-SXM-80GBx8", "AS-4124GO-NART_A100-SXM-80GBx8", "DGX-A100_A100-SXM-80GBx8"]
# The user.conf of every Supermicro v1.0 run, from the published submission.
USER_CONF = Path(__file__).resolve().parents[1] / "data" / "supermicro-v1.0-user-conf.txt"

# The scenarios the Supermicro v1.0 README lists per benchmark (datacenter and edge together).
README_SCENARIOS = {
    "resnet50": {"Offline", "Server", "SingleStream", "MultiStream"},
    "ssd-mobilenet": {"Offline", "SingleStream", "MultiStream"},
    "ssd-resnet34": {"Offline", "Server", "SingleStream", "MultiStream"},
    "bert-99": {"Offline", "Server", "SingleStream"},
    "bert-99.9": {"Offline", "Server"},
    "dlrm-99": {"Offline", "Server"},
    "dlrm-99.9": {"Offline", "Server"},
    "rnnt": {"Offline", "Server", "SingleStream"},
    "3d-unet-99": {"Offline", "SingleStream"},
    "3d-unet-99.9": {"Offline", "SingleStream"},
}


@pytest.fixture()
def sysdir(tmp_path: Path) -> Path:
    """A private copy of systems/ to break."""
    target = tmp_path / "systems"
    shutil.copytree(systems_dir(), target)
    return target


def edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def error_of(system_id: str, directory: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_system(system_id, directory)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- the shipped files -------------------------------------------------------------------

def test_expected_ids_present():
    ids = system_ids()
    for expected in SXM80_X8 + [
        "AS-4124GO-NART_A100-SXM4-40GBx8", "AS-2124GQ-NART_A100-SXM-80GBx4",
        "AS-2124GQ-NART_A100-SXM4-40GBx4", "AS-4124GS-TNR_A100-PCIex8", "SBA-4119SG-X_A100-PCIex1",
        "cpu", "H200x1",
    ]:
        assert expected in ids
    assert not any(i.startswith("_") for i in ids)


@pytest.mark.parametrize("system_id", system_ids())
def test_every_system_loads(system_id: str):
    system = load_system(system_id)
    assert isinstance(system, System)
    assert system.settings, system_id
    assert system.description.get("system_name")
    for bench, per_scenario in system.settings.items():
        assert bench in BENCHMARKS
        for scenario, h in per_scenario.items():
            assert scenario in SCENARIOS
            assert h.batch_size >= 1
            target = {
                "Offline": h.offline_expected_qps, "Server": h.server_target_qps,
                "SingleStream": h.single_stream_expected_latency_ns,
                "MultiStream": h.multi_stream_samples_per_query,
            }[scenario]
            assert target is not None, f"{system_id} {bench} {scenario} has no target"
    if system.accelerator_count:
        assert system.accelerator


def test_every_file_extends_at_most_one_level():
    for path in systems_dir().glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        parent = data.get("extends")
        if parent:
            assert "extends" not in yaml.safe_load((systems_dir() / f"{parent}.yaml").read_text())


@pytest.mark.parametrize("system_id", SXM80_X8)
def test_resnet50_offline_on_8x_a100_sxm_80gb(system_id: str):
    # NVIDIA v1.0 A100-SXM-80GBx8 (extends A100-SXM4-40GBx8): gpu_batch_size 2048,
    # gpu_offline_expected_qps 294400; Supermicro user.conf: *.Offline.target_qps = 294400.
    system = load_system(system_id)
    h = system.harness("resnet50", "Offline")
    assert h.batch_size == 2048
    assert h.offline_expected_qps == 294400
    assert (h.copy_streams, h.inference_streams, h.precision) == (3, 2, "int8")
    assert system.accelerator_count == 8 and system.engines(2) == 8


def test_server_target_is_the_user_conf_value():
    # supermicro-user-conf.txt, SYS-420GP-TNAR_A100-SXM-80GBx8_TRT: resnet50 Server 260000,
    # rnnt Server 102000 (the published run's log says 103900; the system file follows user.conf).
    system = load_system("SYS-420GP-TNAR_A100-SXM-80GBx8")
    assert system.harness("resnet50", "Server").server_target_qps == 260000
    assert system.harness("rnnt", "Server").server_target_qps == 102000
    h = load_system("AS-2124GQ-NART_A100-SXM4-40GBx4").harness("bert-99", "Server")
    assert h.server_target_qps == 12360


def _user_conf() -> dict[tuple[str, str, str], dict[str, float]]:
    values: dict[tuple[str, str, str], dict[str, float]] = {}
    current = None
    for line in USER_CONF.read_text().splitlines():
        if line.startswith("# "):
            current = tuple(line[2:].strip().split("/"))
            values[current] = {}
        elif "=" in line and current:
            key, value = (x.strip() for x in line.split("="))
            values[current][key.rsplit(".", 1)[-1]] = float(value)
    return values


def test_every_user_conf_target_matches():
    by_submission = {load_system(i).submission_id: load_system(i) for i in system_ids()}
    checked = 0
    for (submission, bench, scenario), values in _user_conf().items():
        system = by_submission[submission]
        h = system.harness(bench, scenario)
        if "target_qps" in values and scenario == "Offline":
            assert h.offline_expected_qps == values["target_qps"], (submission, bench)
        if "target_qps" in values and scenario == "Server":
            assert h.server_target_qps == values["target_qps"], (submission, bench)
        if "samples_per_query" in values:
            assert h.multi_stream_samples_per_query == values["samples_per_query"], (submission, bench)
        checked += 1
    assert checked > 100


def test_forty_gb_variant_overrides_its_parent():
    h80 = load_system("AS-4124GO-NART_A100-SXM-80GBx8").harness("bert-99", "Offline")
    h40 = load_system("AS-4124GO-NART_A100-SXM4-40GBx8").harness("bert-99", "Offline")
    assert (h80.batch_size, h40.batch_size) == (1280, 1024)
    assert h40.input_dtype == "int32" and h40.copy_streams == 2  # inherited


def test_bert_high_accuracy_is_fp16():
    h = load_system("DGX-A100_A100-SXM-80GBx8").harness("bert-99.9", "Offline")
    assert h.precision == "fp16" and h.batch_size == 512 and h.offline_expected_qps == 15000


def test_cpu_covers_every_benchmark_and_readme_scenario():
    cpu = load_system("cpu")
    assert set(cpu.settings) == set(BENCHMARKS)
    for bench, scenarios in README_SCENARIOS.items():
        assert scenarios <= set(cpu.settings[bench]), bench
    resnet = cpu.harness("resnet50", "Offline")
    assert resnet.batch_size == 64 and resnet.offline_expected_qps == 8000
    server = cpu.harness("resnet50", "Server")
    assert (server.batch_size, server.batch_timeout_us, server.server_target_qps) == (32, 2000, 500)
    assert cpu.accelerator_count == 0 and cpu.engines(16) == 2


def test_h200_is_one_gpu_with_all_readme_pairs():
    h200 = load_system("H200x1")
    assert (h200.accelerator, h200.accelerator_count) == ("H200", 1)
    for bench, scenarios in README_SCENARIOS.items():
        assert scenarios <= set(h200.settings[bench]), bench
    assert h200.harness("resnet50", "Offline").offline_expected_qps == 73600  # A100 36800 x 2


def test_missing_pair_raises():
    system = load_system("SYS-420GP-TNAR_A100-SXM-80GBx8")
    with pytest.raises(ConfigError, match="SingleStream"):
        system.harness("resnet50", "SingleStream")
    with pytest.raises(ConfigError, match="ssd-mobilenet|benchmark"):
        load_system("AS-4124GS-TNR_A100-PCIex8").harness("ssd-mobilenet", "Offline")


def test_unknown_id_names_it_and_the_allowed():
    with pytest.raises(ConfigError) as info:
        load_system("nope")
    assert "'nope'" in str(info.value) and "cpu" in str(info.value)
    with pytest.raises(ConfigError):
        load_system("_A100-SXM-x8")


# --- malformed files -----------------------------------------------------------------------

def test_missing_field(sysdir: Path):
    edit(sysdir / "cpu.yaml", lambda d: d["settings"]["resnet50"]["Offline"].pop("batch_size"))
    msg = error_of("cpu", sysdir)
    assert "cpu.yaml" in msg and "settings.resnet50.Offline.batch_size" in msg and "missing" in msg


def test_wrong_type(sysdir: Path):
    edit(sysdir / "cpu.yaml", lambda d: d["settings"]["resnet50"]["Server"].update(batch_size="many"))
    msg = error_of("cpu", sysdir)
    assert "cpu.yaml" in msg and "settings.resnet50.Server.batch_size" in msg


def test_wrong_type_top_level(sysdir: Path):
    edit(sysdir / "cpu.yaml", lambda d: d.update(accelerator_count="eight"))
    msg = error_of("cpu", sysdir)
    assert "cpu.yaml" in msg and "accelerator_count" in msg


def test_unknown_field(sysdir: Path):
    edit(sysdir / "cpu.yaml", lambda d: d.update(colour="red"))
    msg = error_of("cpu", sysdir)
    assert "cpu.yaml" in msg and "colour" in msg and "unknown field" in msg


def test_unknown_harness_field(sysdir: Path):
    edit(sysdir / "cpu.yaml", lambda d: d["settings"]["resnet50"]["Offline"].update(batchsize=3))
    msg = error_of("cpu", sysdir)
    assert "settings.resnet50.Offline.batchsize" in msg and "unknown field" in msg


def test_unknown_benchmark(sysdir: Path):
    edit(sysdir / "cpu.yaml", lambda d: d["settings"].update({"resnet-50": {"Offline": {"batch_size": 1}}}))
    msg = error_of("cpu", sysdir)
    assert "cpu.yaml" in msg and "settings.resnet-50" in msg and "unknown benchmark" in msg
    assert "resnet50" in msg  # the allowed ones


def test_unknown_scenario(sysdir: Path):
    edit(sysdir / "cpu.yaml", lambda d: d["settings"]["resnet50"].update({"offline": {"batch_size": 1}}))
    msg = error_of("cpu", sysdir)
    assert "settings.resnet50.offline" in msg and "unknown scenario" in msg and "Offline" in msg


def test_extends_missing_parent(sysdir: Path):
    edit(sysdir / "cpu.yaml", lambda d: d.update(extends="_nothing"))
    msg = error_of("cpu", sysdir)
    assert "cpu.yaml" in msg and "extends" in msg and "_nothing" in msg


def test_extends_cycle(sysdir: Path):
    (sysdir / "a.yaml").write_text("extends: b\nsettings: {}\n")
    (sysdir / "b.yaml").write_text("extends: a\nsettings: {}\n")
    msg = error_of("a", sysdir)
    assert "a.yaml" in msg and "extends" in msg and "cycle" in msg


def test_extends_itself(sysdir: Path):
    edit(sysdir / "cpu.yaml", lambda d: d.update(extends="cpu"))
    msg = error_of("cpu", sysdir)
    assert "cpu.yaml" in msg and "extends" in msg and "cycle" in msg


def test_extends_two_levels(sysdir: Path):
    (sysdir / "_base.yaml").write_text("extends: _A100-SXM-x8\n")
    (sysdir / "child.yaml").write_text("extends: _base\naccelerator: A100-SXM-80GB\n")
    msg = error_of("child", sysdir)
    assert "child.yaml" in msg and "extends" in msg and "one level" in msg


def test_error_in_parent_names_the_parent(sysdir: Path):
    edit(sysdir / "_A100-SXM-x8.yaml",
         lambda d: d["settings"]["resnet50"]["Offline"].update(copy_streams="three"))
    msg = error_of("SYS-420GP-TNAR_A100-SXM-80GBx8", sysdir)
    assert "_A100-SXM-x8.yaml" in msg and "settings.resnet50.Offline.copy_streams" in msg


def test_invalid_yaml(sysdir: Path):
    (sysdir / "cpu.yaml").write_text("settings: {resnet50: [\n")
    msg = error_of("cpu", sysdir)
    assert "cpu.yaml" in msg and "YAML" in msg


def test_not_a_mapping(sysdir: Path):
    (sysdir / "cpu.yaml").write_text("- a\n- b\n")
    msg = error_of("cpu", sysdir)
    assert "cpu.yaml" in msg and "mapping" in msg


def test_child_overrides_per_field(sysdir: Path):
    edit(sysdir / "SYS-420GP-TNAR_A100-SXM-80GBx8.yaml",
         lambda d: d["settings"]["resnet50"]["Offline"].update(batch_size=1024))
    h = load_system("SYS-420GP-TNAR_A100-SXM-80GBx8", sysdir).harness("resnet50", "Offline")
    assert h.batch_size == 1024 and h.copy_streams == 3 and h.offline_expected_qps == 294400


def test_env_var_selects_folder(sysdir: Path, monkeypatch):
    (sysdir / "extra.yaml").write_text("settings: {resnet50: {Offline: {batch_size: 4}}}\n")
    monkeypatch.setenv("RAYBENCH_SYSTEMS_DIR", str(sysdir))
    assert "extra" in system_ids()
    assert load_system("extra").harness("resnet50", "Offline").batch_size == 4


# --- CLI ---------------------------------------------------------------------------------

def _cli(*args: str):
    from raybench.cli import app

    return CliRunner().invoke(app, ["systems", *args], env={"COLUMNS": "200"})


def test_cli_list():
    result = _cli("list")
    assert result.exit_code == 0, result.output
    assert "SYS-420GP-TNAR_A100-SXM-80GBx8" in result.output
    assert "8 x A100-SXM-80GB" in result.output
    assert "_A100-SXM-x8" not in result.output


def test_cli_show():
    result = _cli("show", "SYS-420GP-TNAR_A100-SXM-80GBx8", "--benchmark", "resnet50", "--scenario", "Offline")
    assert result.exit_code == 0, result.output
    assert "2048" in result.output and "294k/s" in result.output
    assert "harness settings · resnet50" in result.output  # one row: its benchmark in the title
    rows = [ln for ln in result.output.splitlines() if ln.startswith("Offline")]
    assert len(rows) == 1 and "2048" in rows[0]


def test_cli_show_all():
    result = _cli("show", "cpu")
    assert result.exit_code == 0, result.output
    for bench in BENCHMARKS:
        assert bench in result.output


def test_cli_show_unknown_id():
    result = _cli("show", "nope")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert re.search(r"unknown system 'nope' \(allowed: .*cpu", lines[0])


def test_cli_show_unknown_benchmark_and_missing_scenario():
    result = _cli("show", "cpu", "--benchmark", "bert")
    assert result.exit_code == 2 and "unknown benchmark 'bert'" in result.output
    result = _cli("show", "cpu", "--benchmark", "ssd-mobilenet", "--scenario", "Server")
    assert result.exit_code == 2 and "Server" in result.output


def test_a_scenario_the_system_lacks_is_named_by_its_value():
    from raybench.config.names import Scenario

    system = load_system("SYS-420GP-TNAR_A100-SXM-80GBx8")
    with pytest.raises(ConfigError) as raised:
        system.harness("resnet50", Scenario("SingleStream"))
    assert str(raised.value).endswith(
        "for scenario 'SingleStream' (allowed: Server, Offline)")
