"""Reading AWS: the only package that imports aiobotocore, botocore or aiohttp.

``clients`` opens sessions and clients with the network settings (``network``, ``partitions``),
``wire`` is the lean ECR client, ``answers`` turns ECR's answers into records, and ``reader``
(``AwsEcrReader``) lists and reads the sources with its caches (``cache``).
"""
