"""The getting-started pipelines of the KFP operator's examples."""
