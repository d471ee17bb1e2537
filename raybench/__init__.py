"""raybench: MLPerf Inference on Ray."""

__version__ = "0.2.0"
