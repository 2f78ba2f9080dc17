"""The path of one record: SmartUp's answer (:mod:`~jobs.pipeline.smartup`), parsed
(:mod:`~jobs.pipeline.records`) as its stream declares (:mod:`~jobs.pipeline.streams`),
loaded (:mod:`~jobs.pipeline.loader`), driven by :mod:`~jobs.pipeline.engine`. Nothing
here knows of the day's budget, the run or the processes above it."""
