"""The model's versions as `--set` lists, for the scripts that compare them (bench/compare.py,
bench/paired.py and those that import them). Not a command.

v5 is the baseline's (data/scenarios/baseline.toml's "Model v5" block, docs/model.md "v5 by
default"), and every other scenario inherits it.
"""

#: v4 in any scenario: the schema's default of every key the baseline's v5 block sets
#: (bench/test_scenario_table.py checks both halves of that).
V4_SETS = ("seats=false", "need_sat=inf", "plan_pass=0", "plan_split=false", "firm_bass=false", "size_strata=false",
           "compute_caps=false", "pool_price_taker=false", "beta_R=0.001", "firm_adopt0=0.1")
#: v5's mechanisms without compute caps (§2.4, §2.6e), as they stood before compute caps landed.
V5_NO_CC_SETS = ("seats=true", "need_sat=30", "plan_pass=1", "plan_split=true", "firm_bass=true", "size_strata=true",
                 "compute_caps=false")
