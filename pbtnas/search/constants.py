"""Constants the run config and the operators share, in a leaf module: reading a config (``pbtnas
status`` does) must not import the operators, which import torch."""

from __future__ import annotations

#: where shrink-perturb applies in a transplanted layer: every floating tensor (the paper's
#: choice, BatchNorm statistics included) or learnable parameters only, buffers copied
SP_BUFFERS = ("all", "parameters")
