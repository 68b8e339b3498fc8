"""A stand-in for polars, only for benchmarks/device/tstr_gpu.sh, never on a user's path.

The polars wheel (54 MB) does not fit the device run's 64 MiB. ultralytics imports it
only in Trainer.read_results_csv, whose try/except turns this error into an empty dict (the
checkpoint's train_results); nothing in training or prediction reads it."""


def read_csv(*args, **kwargs):
    raise NotImplementedError("polars is not installed on the device run")
