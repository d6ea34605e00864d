"""Measuring the grader against human graders (`interview eval`, issue #3).

datasets    the bundled human-graded sets (ads, mohler) and any JSONL/CSV with a column map
sampling    `--limit N`: a seeded sample stratified by question and human score band
keypoints   key points drafted from reference answers by the LLM, cached on disk
runner      grades the rows, one fsynced JSONL line per row, so an interrupted run resumes
metrics     Pearson, Spearman, quadratic weighted kappa, RMSE, MAE, agreement, band confusion
calibration a monotone map from the grader's features to the human scale, fitted on dev
report      report.json, report.md and a self-contained report.html with a scatter plot
evaluate    one `interview eval`: sample -> plan (grader, key points, run folder) -> grade or reassess -> report
fitting     `interview calibrate` and `eval --fit`: dev runs only; the score entry and the verdict model
"""
