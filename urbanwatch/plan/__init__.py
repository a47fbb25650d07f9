"""The plan (安政办〔2021〕23号): its targets as data, their status, and the progress report."""
