// The device Backend of the stats pipeline (stats_pipeline.h): CUDA driver API calls only
// (driver_api.h), the kernels launched through their launchers (stats_cuda.h) on a driver queue.
//
// Contract (per device, created at first use by ensure_device in the context the program uses the
// device through: the calling thread's current one, else the device's ACTIVE primary context;
// never a new context):
//  - the statistics kernels loaded into that context (cuModuleLoadData: the fatbin, else the
//    ISA-8.0 PTX for the driver to JIT; stats_kernel_images.h), each entry looked up by name and
//    its resident grid queried once;
//  - FPSCOPE_CUDA_SLOTS (default 256) result slots: device TensorStats + pinned host TensorStats +
//    kScalarsPerSlot pinned floats + one CUevent (timing disabled) each. Set-up runs in relaxed
//    capture mode (an allocation in another thread's global capture would invalidate it); a
//    failure releases what was made and the device is never retried.
//  - enqueue_stats (program's thread, its current context): launch_tensor_stats (the batched
//    launcher when a batch is not one contiguous block; both reset the slot first), then
//    launch_block_stats into the same slot when job.block_formats != 0, cuMemcpyDtoHAsync of the
//    whole TensorStats (its block section included) into the pinned slot and cuEventRecord, all
//    on the job's stream. Nothing else is touched: no synchronization, no allocation.
//  - poll: cuEventQuery (CUDA_ERROR_NOT_READY -> Pending; any other error -> Failed), in relaxed
//    capture mode; on the drain thread after making the slot's context current.
//  - Watches (device_watch.h): each slot also has a device + pinned UpdateLoss. create_watch:
//    a non-blocking stream, two events, and cuMemAllocAsync'd FP32 snapshot (+ scratch for
//    BF16/FP16) on that stream; a device without memory pools is refused. enqueue_watch (with the
//    watch's context current, the caller's restored): event on the program's stream -> the
//    watch's stream waits; widen (BF16/FP16), launch_update_loss into the slot + copy to pinned +
//    slot event (measure), device-to-device copy into the snapshot (snapshot); event on the
//    watch's stream -> the program's stream waits. destroy_watch: cuMemFreeAsync +
//    cuStreamDestroy (no synchronization).
// Proven end to end against the strict mock driver (tests/mock_cuda); see docs/gpu.md for what
// only a GPU can show.
#pragma once

#include <memory>
#include <string>

#include "stats_pipeline.h"

namespace fpscope::cuda {

// nullptr (with *why) when this process has no usable CUDA driver (driver_api.h) or device.
std::unique_ptr<Backend> make_cuda_backend(int slots, std::string* why);

}  // namespace fpscope::cuda
