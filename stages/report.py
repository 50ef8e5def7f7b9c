"""DVC stage `report`: Write the offline report (Markdown and HTML with figures) to plots/report/."""
from genlib.pipeline.report import report_stage
from genlib.pipeline.runner import stage_main

if __name__ == "__main__":
    stage_main("report", report_stage)
