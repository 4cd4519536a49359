"""What partners call: the request pipeline, the envelope renderer, one thin handler module per OCPI interface."""
