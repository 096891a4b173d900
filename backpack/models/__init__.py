"""Neural models: ONNX Runtime and IREE behind one interface, model tasks, factor-model export and serving."""
