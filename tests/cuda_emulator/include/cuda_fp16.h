// Stand-in for the CUDA header of this name: see cuda_emulator.hpp.
#pragma once
#include "cuda_emulator.hpp"
