// Umbrella header of the fpscope analysis library (target fpscope_analysis).
#pragma once

#include "fpscope/analysis/common.h"
#include "fpscope/analysis/diff.h"
#include "fpscope/analysis/drift.h"
#include "fpscope/analysis/export.h"
#include "fpscope/analysis/finding_options.h"
#include "fpscope/analysis/findings.h"
#include "fpscope/analysis/format_choice.h"
#include "fpscope/analysis/loss_scale.h"
#include "fpscope/analysis/palette.h"
#include "fpscope/analysis/report.h"
#include "fpscope/analysis/risk.h"
#include "fpscope/analysis/summary.h"
#include "fpscope/analysis/weights.h"
#include "fpscope/analysis/whatif.h"
