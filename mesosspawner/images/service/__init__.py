"""The images service (``mesosspawner-images serve``): registry browser and user-built images."""
