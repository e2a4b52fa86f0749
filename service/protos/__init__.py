"""The KServe v2 gRPC definition and the modules grpcio-tools generates from it (`make protos`)."""
