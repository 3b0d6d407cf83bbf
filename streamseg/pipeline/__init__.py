"""The frame pipeline: bounded queues, the stage interface, the runner, and assembly from a RunConfig."""
