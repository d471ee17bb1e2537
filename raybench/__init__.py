"""raybench: MLPerf Inference on Ray."""

__version__ = "0.1.0"
