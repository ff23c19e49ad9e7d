"""A small KFP SDK pipeline: adds two numbers, then adds a third to the sum.

The Pipeline resource names it as ``getting_started.pipeline.add_pipeline`` (framework ``kfpsdk``). Its components
run in the Pipeline's image: the kfpsdk compiler sets ``KFP_PIPELINE_IMAGE`` to ``spec.image`` before it imports
this module.
"""

import os

from kfp import dsl

#: The image the components run in: the Pipeline resource's spec.image when compiled by the operator.
BASE_IMAGE = os.environ.get("KFP_PIPELINE_IMAGE", "python:3.11-slim")


@dsl.component(base_image=BASE_IMAGE)
def add(a: float, b: float) -> float:
    """Returns a + b."""
    return a + b


@dsl.pipeline(name="add-pipeline", description="Adds three numbers in two steps.")
def add_pipeline(a: float = 1.0, b: float = 2.0, c: float = 3.0) -> float:
    """(a + b) + c."""
    first = add(a=a, b=b)
    second = add(a=first.output, b=c)
    return second.output
