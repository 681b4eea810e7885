"""saliency package."""
