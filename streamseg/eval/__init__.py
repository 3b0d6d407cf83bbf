"""Scoring segmentation quality: the confusion matrix and mIoU, and ``streamseg eval`` on labelled folders."""
