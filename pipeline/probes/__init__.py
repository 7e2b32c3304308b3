"""What would fool the model (DESIGN §11): artifacts, places and the pixel rules of the edits; the stage."""
