#!/usr/bin/perl
# launch_rewrite.pl IN.cu > OUT.cpp — part of the CUDA host emulation (README.md here).
# Rewrites a kernels_*.cu file into C++ the host compiler takes: includes
# emu_prelude.h before kernels_common.cuh, and turns every launch
#   kernel<T><<<grid, block[, shared, stream]>>>(args);
# into
#   lg_emu_launch(grid, block, shared, stream, lg_emu_bind(kernel<T>, args));
# (all four launch parameters given) which runs every thread of every block as a fiber (emu_rt.cpp).
# lg_emu_bind (emu_prelude.h) converts the arguments to the kernel's parameter types at the launch, as
# CUDA copies them: a captured launch runs later, when a lambda's references ([&]) or pointers to
# the launching function's locals (an argument *bc) would dangle. Fails if a launch is left that
# the pattern did not match.
use strict;
use warnings;
local $/;
my $in = $ARGV[0] or die "usage: launch_rewrite.pl IN.cu\n";
open(my $fh, '<', $in) or die "$in: $!\n";
$_ = <$fh>;
s{#include "backends/cuda/kernels_common.cuh"}{#include "emu_prelude.h"\n#include "backends/cuda/kernels_common.cuh"};
s{([A-Za-z_]\w*(?:<[^<>;]*>)?)\s*<<<([^,;]*),\s*([^,;]*),\s*([^,;]*),\s*([^,;]*?)>>>\((.*?)\);}
 {my ($k, $grid, $block, $shm, $stream, $args) = ($1, $2, $3, $4, $5, $6);
  "lg_emu_launch((unsigned)($grid), (unsigned)($block), (size_t)($shm), $stream, lg_emu_bind($k"
      . ($args =~ /\S/ ? ", $args" : "") . "));"}gse;
die "$in: a kernel launch the rewrite did not match is left\n" if /<<</;
print;
