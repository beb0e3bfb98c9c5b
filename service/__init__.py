"""ecr-catalog: AWS ECR as Backstage catalog entities, served live over HTTP."""

__version__ = "0.1.0"
