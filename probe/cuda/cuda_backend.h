// The device Backend of the stats pipeline (stats_pipeline.h): CUDA runtime calls only.
//
// Contract (per device, created at first use by ensure_device on the calling thread's device):
//  - FPSCOPE_CUDA_SLOTS (default 256) result slots: device TensorStats + pinned host TensorStats +
//    kScalarsPerSlot pinned floats + one cudaEvent (timing disabled) each.
//  - enqueue_stats: the kernels' launch_tensor_stats (launch_tensor_stats_batched when a batch is
//    not one contiguous block; both reset the slot first), then launch_block_stats into the same
//    slot when job.block_formats != 0, cudaMemcpyAsync of the whole TensorStats (its block
//    section included) into the pinned slot and cudaEventRecord, all on the job's stream. Nothing
//    else is touched: no synchronization, no allocation.
//  - poll: cudaEventQuery (cudaErrorNotReady -> Pending; any other error -> Failed), in relaxed
//    stream-capture mode; on the drain thread after making the slot's device current.
//  - Watches (device_watch.h): each slot also has a device + pinned UpdateLoss. create_watch:
//    a non-blocking stream, two events, and cudaMallocAsync'd FP32 snapshot (+ scratch for
//    BF16/FP16) on that stream; a device without memory pools is refused. enqueue_watch: event on
//    the program's stream -> the watch's stream waits; widen (BF16/FP16), launch_update_loss into
//    the slot + copy to pinned + slot event (measure), device-to-device copy into the snapshot
//    (snapshot); event on the watch's stream -> the program's stream waits. destroy_watch:
//    cudaFreeAsync + cudaStreamDestroy (no synchronization). None of this has run on a GPU.
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
