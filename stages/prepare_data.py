"""DVC stage `prepare_data`: Draw the seeded train and test sets into data/prepared/."""
from genlib.cli import stage_main
from genlib.pipeline import prepare_data

if __name__ == "__main__":
    stage_main(prepare_data)
