/*
 * loopgrad.h — everything public, in one include.
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
