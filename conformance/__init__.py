"""gym-conformance: does an RL framework's generation endpoint keep training on-policy under NeMo Gym?"""

__version__ = "0.1.0"
