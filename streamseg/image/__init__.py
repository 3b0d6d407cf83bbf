"""Pixel work around the network: preprocessing, resizing, scores to labels, label upsampling, the overlay."""
