class CofferError(Exception):
    """A rejection with a failure class of spec §1.8."""

    def __init__(self, failure_class, message=""):
        super().__init__(f"{failure_class}: {message}" if message else failure_class)
        self.failure_class = failure_class
        self.message = message


class DriverError(Exception):
    """The driver cannot process the request (missing field, randomness not consumed exactly)."""
