import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

from convert import celsius_to_fahrenheit, fahrenheit_to_celsius  # noqa: E402


class ConvertTest(unittest.TestCase):
    def test_boiling_point(self):
        self.assertAlmostEqual(celsius_to_fahrenheit(100), 212)

    def test_round_trip(self):
        for value in (-40, 0, 37, 100):
            self.assertAlmostEqual(fahrenheit_to_celsius(celsius_to_fahrenheit(value)), value)


if __name__ == '__main__':
    unittest.main()
