"""Helper scripts the robustness tests launch as subprocesses (run as files, not imported)."""
