"""Everything that imports Keras: the differentiable physics, the two networks, training, test-time refinement,
bundles."""
