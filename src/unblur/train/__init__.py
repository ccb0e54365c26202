"""Training: the restoration and motion networks learn from synthesised and real pairs.

* :mod:`unblur.train.data`: pair sources (synthetic blur of sharp photos, averaged video
  frames, real pairs) and the pre-generated pair pool;
* :mod:`unblur.train.motion_data`: samples with ground-truth motion fields;
* :mod:`unblur.train.torch_blur`: the uniform-blur forward model on batched tensors (GPU-side
  pair synthesis; not yet wired into the trainer);
* :mod:`unblur.train.config`: YAML configs read into checked dataclasses, the shared parts;
* :mod:`unblur.train.loop`: the one training loop (schedule, EMA, validation cadence, logs,
  stopping, DDP) over a task (``unblur train CONFIG``);
* :mod:`unblur.train.checkpoint`: safetensors checkpoints with exact resume;
* :mod:`unblur.train.restoration` and :mod:`unblur.train.motion`: the two tasks, each its
  config, model, data, loss and validation.
"""
