/*
 * fake_cudnn.c — part of the CUDA host emulation (README.md here): every
 * cuDNN call the backend makes fails with CUDNN_STATUS_NOT_SUPPORTED (3000),
 * so cuda_rnn.c refuses to fuse loops onto cuDNN and they run step by step
 * on the emulated kernels. Defined without cudnn.h's prototypes (old-style
 * empty parameter lists): no call reaches past the status.
 */
#define S(name) int name() { return 3000; }
S(cudnnCreate) S(cudnnCreateDropoutDescriptor) S(cudnnCreateRNNDataDescriptor) S(cudnnCreateRNNDescriptor)
S(cudnnCreateTensorDescriptor) S(cudnnDestroy) S(cudnnDestroyDropoutDescriptor) S(cudnnDestroyRNNDataDescriptor)
S(cudnnDestroyRNNDescriptor) S(cudnnDestroyTensorDescriptor) S(cudnnGetRNNTempSpaceSizes) S(cudnnGetRNNWeightParams)
S(cudnnGetRNNWeightSpaceSize) S(cudnnGetTensorNdDescriptor) S(cudnnRNNBackwardData_v8) S(cudnnRNNBackwardWeights_v8)
S(cudnnRNNForward) S(cudnnSetDropoutDescriptor) S(cudnnSetRNNDataDescriptor) S(cudnnSetRNNDescriptor_v8) S(cudnnSetStream)
S(cudnnSetTensorNdDescriptor)
const char *cudnnGetErrorString() { return "cuDNN emulated: not supported"; }
void cudnnGetLastErrorString(char *m, unsigned long n) { if (n) m[0] = 0; }
