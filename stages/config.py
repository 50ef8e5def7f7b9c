"""DVC stage `config`: Resolve params.yaml into each stage's key, data/keys/<stage>.json."""
from genlib.pipeline.keys import write_keys
from genlib.pipeline.runner import stage_main

if __name__ == "__main__":
    stage_main("config", write_keys)
