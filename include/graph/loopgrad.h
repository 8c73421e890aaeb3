/*
 * loopgrad.h — everything public, in one include, but for the headers of
 * optional parts, which a build may lack: keras.h (built with libhdf5),
 * distributed_mpi.h and distributed_nccl.h (their own libraries and
 * pkg-config names), and the viz and plot tools' headers.
 *
 *     #include <graph/loopgrad.h>    // with pkg-config --cflags loopgrad
 */
#ifndef LG_LOOPGRAD_H
#define LG_LOOPGRAD_H

#include "status.h"
#include "tensor.h"
#include "graph.h"
#include "ops.h"
#include "program.h"
#include "autodiff.h"
#include "gradcheck.h"
#include "init.h"
#include "loop.h"
#include "layers.h"
#include "cells.h"
#include "norm.h"
#include "decode.h"
#include "summary.h"
#include "optim.h"
#include "fit.h"
#include "checkpoint.h"
#include "datafiles.h"
#include "dataset.h"
#include "preprocess.h"
#include "synthetic.h"
#include "cpu.h"
#include "distributed.h"

#endif
