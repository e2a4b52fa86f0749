"""Offline training of LSTM/GRU text models and their export to servable ONNX bundles."""
