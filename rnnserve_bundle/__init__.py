"""The model bundle format, shared by `training/` (which writes bundles) and `service/` (which
serves them): `config.json` (`config`), the tokenizer and truncation policy (`encoder`), padding
and probabilities (`tensors`), ONNX Runtime sessions (`sessions`), and the repository layout and
on-disk validation (`layout`). It imports neither torch nor anything from the service."""
