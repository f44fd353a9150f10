// The device Backend of the stats pipeline (stats_pipeline.h): CUDA runtime calls only.
//
// Contract (per device, created at first use by ensure_device on the calling thread's device):
//  - FPSCOPE_CUDA_SLOTS (default 256) result slots: device TensorStats + pinned host TensorStats +
//    kScalarsPerSlot pinned floats + one cudaEvent (timing disabled) each.
//  - enqueue_stats: the kernels' launch_tensor_stats (launch_tensor_stats_batched when a batch is
//    not one contiguous block; both reset the slot first), cudaMemcpyAsync into the pinned slot
//    and cudaEventRecord, all on the job's stream. Nothing else is touched: no synchronization, no
//    allocation.
//  - poll: cudaEventQuery (cudaErrorNotReady -> Pending; any other error -> Failed).
#pragma once

#include <memory>
#include <string>

#include "stats_pipeline.h"

namespace fpscope::cuda {

// nullptr (with *why) when this process has no usable CUDA device.
std::unique_ptr<Backend> make_cuda_backend(int slots, std::string* why);
// False when the probe was built without the kernels' stats launcher (target
// fpscope_kernels_cuda): enqueue_stats then always fails; scalar copies still work.
bool stats_kernels_built();

}  // namespace fpscope::cuda
