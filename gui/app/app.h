// fpscope-gui: the viewer's state and its panels (frame code; the display-free parts live in
// fpscope_gui_core). One App per window; every method runs on the UI thread.
#pragma once

#include <imgui.h>

#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fpscope/gui/rank_view.h"
#include "fpscope/gui/run_compare.h"
#include "fpscope/gui/tensor_view.h"
#include "fpscope/gui/view_model.h"
#include "fpscope/gui/weights_view.h"
#include "plot.h"

namespace fpscope::gui {

struct AppOptions {
  std::vector<std::string> traces;
  std::string select;  // tensor id (or name) to select first; default: the worst tensor
  int64_t step = -1;   // step to show first; default: the first overflow of the selection
  bool play = false;   // start playing
  float font_size = 15.0f;
  // Several traces: one run's ranks (a rank set: rank selector and ranks x steps heatmap) or
  // separate runs (overlaid in the drift panel). Auto: rank_view.h's is_rank_set rule.
  RankSetMode rank_mode = RankSetMode::Auto;
  int64_t rank = -1;  // a rank set: the rank to show first (default: where the first rank broke)
};

// The data of the selected tensor, computed off the UI thread.
struct TensorData {
  uint32_t tensor = 0;
  TensorSteps steps;
  analysis::DriftSeries drift;
  struct Other {
    size_t run = 0;  // index into App's runs
    uint32_t tensor = 0;
    analysis::DriftSeries drift;
  };
  std::vector<Other> others;  // the same tensor in the other runs (analysis::match_tensors)
};

class App {
 public:
  explicit App(AppOptions opt);
  ~App();

  void open(const std::string& path);  // starts loading in the background
  // Builds the whole UI for a framebuffer of w x h pixels.
  void frame(float w, float h);
  // True when nothing is loading or computing (the screenshot waits for this).
  bool idle() const;
  bool any_failed() const;
  // A PNG the user asked for; main captures the frame after rendering it.
  std::string take_png_request();
  void png_written(const std::string& path, bool ok);
  // Screen rectangles of the panels (x, y, w, h), for the tests' pixel checks.
  const std::map<std::string, ImVec4>& regions() const { return regions_; }
  // What the window shows, as text, for the tests (selected tensor, current step, visible step
  // range, the panels' empty-state messages). Rebuilt every frame.
  const std::map<std::string, std::string>& facts() const { return facts_; }
  // Something moves on its own (replay), so the main loop must not wait for input.
  bool animating() const { return playing_; }
  // Benchmark input (fpscope-gui --bench-interact): frame k of a scripted session that replays
  // the run and zooms and pans the step axis, as a user dragging through a trace would.
  void bench_tick(int k);
  bool quit_requested() const { return quit_; }
  void set_play_speed(float steps_per_second) { play_speed_ = steps_per_second; }

 private:
  struct RunSlot {
    std::string path;
    std::future<std::shared_ptr<const Run>> loading;
    std::shared_ptr<const Run> run;
    int64_t rank = -1;  // member of the rank set: its rank; -1: a run of its own
  };

  void poll();
  const Run* primary() const;
  void on_primary_changed();
  // The initial traces are loaded: decide rank set or runs (is_rank_set) and pick the primary.
  void decide_rank_set();
  void on_rank_set(std::shared_ptr<const analysis::RankSet> set);
  // Shows rank `rank`'s trace in every panel at `step`, keeping the step axis' zoom. keep: the
  // selected tensor (by id) stays and step -1 keeps the current step; else pending_select_ and
  // step -1 fall back to on_primary_changed's defaults (the worst tensor, its first failure).
  void select_rank(int64_t rank, int64_t step, bool keep = true);
  bool in_rank_set(size_t slot) const { return rankset_ && runs_[slot].rank >= 0; }
  void select_tensor(int64_t tensor);
  void set_step_index(int64_t i);
  uint64_t cur_step() const;
  void request_tensor_data();
  void request_whatif();
  // The other runs against the reference (= the primary run): compare_runs per pair, once
  // (diffs_), combined off the UI thread. Requested when a run arrives or the primary changes.
  void request_comparison();
  // The comparison, when it is current and there are other runs; null otherwise.
  const Comparison* comparison() const;
  // The other runs (not ranks of a rank set) that loaded: what the comparison covers.
  size_t other_runs() const;
  // The drift panel's "difference to <reference>" plot of the selected tensor (panels_drift.cpp).
  void difference_plot(uint32_t tensor, float height);
  // The timeline's loss curves, one per run in its colour (panels_timeline.cpp).
  void loss_curves(const Plot& pl);

  // panels
  void menu_bar();
  void runs_bar();
  void table_panel(ImVec2 size);
  void detail_panel(ImVec2 size);
  void whatif_controls(const TensorData* td, int64_t si, uint64_t step);
  void timeline_panel(ImVec2 size);
  void heatmap_panel(ImVec2 size);
  // The heatmap's strip for block-scaled formats (panels_blocks.cpp): the chosen format's
  // block-scale distribution at the current step and how much of the tensor's range one block
  // covers. Returns the format shown (-1: the tensor has no block statistics).
  int block_scale_strip(const TensorSteps& st, float height);
  void drift_panel(ImVec2 size);
  void weights_panel(ImVec2 size);
  void weights_table(const std::vector<analysis::WeightLoss>& ws, ImVec2 size);
  void ranks_panel(ImVec2 size);
  void rank_selector();
  void status_bar();
  void dialogs();
  void keyboard();
  void region(const char* name);  // records the last item's rectangle
  void fact(const std::string& key, const std::string& value) { facts_[key] = value; }
  // Shared empty states; true when the panel should show `*why` instead of its plot.
  bool no_data(const char** why) const;
  // Shows no_data's reason, wrapped to the panel (it can be a sentence from the trace).
  static void no_data_message(const char* why);
  void heat_upload();

  // exports
  void export_report(const std::string& path);
  void copy_summary();

  AppOptions opt_;
  std::vector<RunSlot> runs_;
  size_t primary_ = 0;
  bool primary_init_ = false;
  // What on_primary_changed selects instead of its defaults (a rank switch keeps the tensor).
  std::string pending_select_;
  int64_t pending_step_ = -1;

  // rank set (rank_view.h): decided once the initial traces are loaded
  bool ranks_decided_ = false;
  size_t initial_ = 0;  // how many of runs_ came from the command line
  std::future<std::shared_ptr<const analysis::RankSet>> rankset_job_;
  std::shared_ptr<const analysis::RankSet> rankset_;
  std::string rankset_error_;
  RankMetric rank_metric_ = RankMetric::Amax;
  int rank_format_ = 1;  // into kTargets (FP16)
  RankHeat rank_heat_;
  struct RankHeatKey {
    const analysis::RankSet* set = nullptr;
    std::string tensor;
    RankMetric metric = RankMetric::Amax;
    int format = 0;
    bool operator==(const RankHeatKey&) const = default;
  };
  RankHeatKey rank_heat_for_;
  unsigned int rank_tex_ = 0;
  struct RankTexKey {
    RankHeatKey heat;
    double x0 = 0, x1 = 0;
    int width = 0;
    bool operator==(const RankTexKey&) const = default;
  };
  RankTexKey rank_tex_for_;

  // selection and replay
  int64_t sel_ = -1;
  int64_t step_index_ = 0;  // into primary()->timeline_steps
  bool playing_ = false;
  float play_speed_ = 20.0f;  // steps per second
  double play_accum_ = 0.0;
  XView xview_;

  // tensor browser
  std::string filter_;
  std::vector<SortSpec> sort_{{Col::Severity, 0, true}};
  std::vector<uint32_t> rows_;
  bool rows_dirty_ = true;
  bool scroll_to_sel_ = false;
  float tensor_col_w_ = 0.0f;  // fitted once to the first run's ids and names

  // off-thread results
  DiffCache diffs_;  // before cmp_: its jobs use it
  Latest<Comparison> cmp_;
  bool cmp_wanted_ = false;  // a comparison was requested (there are other runs)
  Latest<TensorData> tdata_;
  Latest<WhatIfSeries> whatif_;
  WhatIfConfig wcfg_;
  WhatIfConfig wcfg_requested_;
  int64_t whatif_tensor_ = -1;

  // heatmap
  // The raster is computed off the UI thread (heat_job_); the texture holds the newest finished
  // one and is drawn at the step/bin range it was computed for until a newer one arrives.
  unsigned int heat_tex_ = 0;
  struct HeatKey {
    uint64_t gen = 0;
    double x0 = 0, x1 = 0;
    int width = 0, row_lo = 0, row_hi = 0;
    bool operator==(const HeatKey&) const = default;
  };
  HeatKey heat_requested_;  // what heat_job_ computes (or computed) last
  HeatKey heat_shown_;      // what the texture holds (gen 0: nothing)
  Latest<HeatImage> heat_job_;
  double heat_y0_ = 0, heat_y1_ = 0;  // visible octave range (0: auto)
  bool show_fmt_[kNumTargets] = {true, true, true, true};
  bool show_amax_ = true;

  // per-frame plot data, cached (rebuilt when what it derives from changes)
  const Run* ls_cache_for_ = nullptr;  // loss-scale track: log2(scale) per record
  std::vector<double> ls_x_, ls_y_;
  double ls_lo_ = 0, ls_hi_ = 1;
  uint64_t drift_cache_gen_ = 0;  // tdata_ generation: [series * kNumTargets + format]
  std::vector<std::vector<double>> drift_x_, drift_y_;
  BlockSeries drift_block_[kNumBlockFormats];  // the primary's selected tensor (block_series)
  const Run* w_cache_run_ = nullptr;
  const analysis::WeightLoss* w_cache_for_ = nullptr;
  std::vector<double> w_x_;
  WeightCurve w_curve_[2];  // bf16, fp16
  std::vector<uint64_t> w_steps_;

  // drift / weights
  bool drift_fmt_[kNumTargets] = {true, true, true, true};
  bool drift_block_on_[kNumBlockFormats] = {true, true, true, true, true, true};
  int block_fmt_ = -1;  // the histogram panel's block format (kBlockFormats index; -1: first)
  int weight_sel_ = 0;  // index into the primary's analysis.weights
  const Run* weight_order_for_ = nullptr;
  std::vector<size_t> weight_order_;  // weight_order(): by lost mass
  const Run* left_out_for_ = nullptr;
  std::vector<analysis::LeftOutWeight> left_out_;  // analysis::left_out_weights of the primary
  XView ratio_view_;
  bool ratio_view_init_ = false;

  // dialogs and exports
  bool open_dialog_ = false;
  std::string dialog_dir_;
  std::string dialog_path_;
  bool report_dialog_ = false;
  std::string report_path_;
  bool png_dialog_ = false;
  std::string png_path_;
  std::string png_request_;
  std::future<std::string> report_job_;
  std::string toast_;
  double toast_until_ = 0.0;
  std::string last_summary_;

  std::map<std::string, ImVec4> regions_;
  std::map<std::string, std::string> facts_;
  std::vector<std::string> run_labels_;  // chips: file names, parent folders where they clash
  bool quit_ = false;
};

}  // namespace fpscope::gui
