"""DVC stage `report`: Write the offline report (Markdown and HTML with figures) to plots/report/."""
from genlib.cli import stage_main
from genlib.report import report_stage

if __name__ == "__main__":
    stage_main(report_stage)
