"""`make bench`: what users wait on, each as a ratio to the floor it cannot beat."""
