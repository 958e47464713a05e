"""``streameval batch``: evaluate a whole dataset of (original, de-identified) pairs and aggregate per method.

Each pair runs the ordinary replay (:func:`streameval.evaluation.evaluate`) in a worker — a local process pool
or Ray tasks — and its report, JSON Lines records and mergeable whole-stream statistics land in
``DIR/pairs/<id>/``. The driver skips pairs already complete, retries failing ones a bounded number of times and
aggregates the paper's table per method from the stored statistics (docs/scaling.md).
"""
