"""HTTP inference service for LSTM/GRU text models on ONNX Runtime."""
