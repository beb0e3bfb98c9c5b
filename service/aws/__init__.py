"""Reading AWS: the only package that imports aioboto3, aiobotocore or botocore.

``clients`` opens sessions and clients with the network settings (``network``, ``partitions``),
``ecr`` paces, bounds and counts each ECR call, ``errors`` turns botocore's exceptions into
ours, ``answers`` turns ECR's answers into records, and ``reader`` (``AwsEcrReader``) lists
and reads the sources with its caches (``cache``, ``repositories``); ``organization`` and
``roles`` discover an organisation's accounts and assume a role in each.
"""
