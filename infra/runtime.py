"""The Lambda runtime the layer is built for and the functions run on.

`build_layer.py` and the stack both read these, so the wheels, the byte-code and the function runtime
cannot disagree. Plain constants (no CDK import) so the layer build starts fast.

- Python 3.12: every wheel the layer needs (numpy, pandas, TA-Lib, pydantic-core, wrapt) is published for
  it, it is the interpreter the team tests the code on besides 3.11/3.13, and it is supported on Lambda
  until late 2028. Moving on is one edit here plus `make layer`.
- x86_64: TA-Lib ships manylinux wheels for both x86_64 and aarch64, but x86_64 matches the machines the
  tests, the golden values and `backtest run` execute on, so floating-point results (SIMD/FMA paths in
  numpy and TA-Lib) are bit-identical between a local run and the service; it also lets `make layer`
  import-check the built layer with the runtime's interpreter on this host. arm64 would be about 20%
  cheaper per GB-second.
"""

from __future__ import annotations

PYTHON_VERSION = "3.12"
ARCHITECTURE = "x86_64"
# uv's --python-platform for the layer's wheels: manylinux_2_28 and older (2_17, 2014), which run on the
# runtime's Amazon Linux 2023 (glibc 2.34). Wheel tags say aarch64 where Lambda says arm64.
PYTHON_PLATFORM = f"{'aarch64' if ARCHITECTURE == 'arm64' else ARCHITECTURE}-manylinux_2_28"
# The two first-party packages the layer ships next to its third-party dependencies.
LAYER_PACKAGES = ("backtest_engine", "backtest_service")
