"""summarizer: on each load manifest, refresh the daily summary for the days the batch touched."""
