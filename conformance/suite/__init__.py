"""The conformance test items the plugin contributes when ``--endpoint`` is given."""
