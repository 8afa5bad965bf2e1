"""The contract and the deployment files: schemas and models, codec, compatibility, agreements, topics, deploy files,
alert rules."""
