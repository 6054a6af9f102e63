"""Generation family: hierarchical commit-message and patch drafting.

* :mod:`corpus`: the training corpus from ``commit_diffs``/``commits`` (bots and near-duplicates
  removed, split by time);
* :mod:`level1`: gradient boosting for subsystem, change type and complexity (calibrated);
* :mod:`retrieval`: the NNGen-style nearest-neighbour baseline, also context for level 2;
* :mod:`lm`, :mod:`backbones`, :mod:`train`: the torch causal LM (from-scratch or SmolLM2 + LoRA);
* :mod:`metrics`: BLEU (B-Moses, B-Norm), ROUGE-L, prefix accuracy;
* :mod:`pipeline`: one run that trains and evaluates against NNGen on the same rows;
* :mod:`release`: level 1, the LM and each LoRA adapter through the one release path
  (:func:`release.train_and_release` is the asset's and the CLI's single training entry).

Generated text (including drafted diffs) is only ever written out or checked with
``git apply --check``; nothing generated is executed.
"""
