"""Physical constants shared by the channel models, in SI units with the unit in the name.

Sources: the speed of light and the Boltzmann constant are exact SI defining
constants (2019 SI); Earth's gravitational parameter and equatorial radius are the
WGS 84 values (NGA.STND.0036), the mean radius the IUGG mean radius R1.
"""

from __future__ import annotations

import math

SPEED_OF_LIGHT_M_S = 299_792_458.0
BOLTZMANN_J_PER_K = 1.380649e-23
# 10 log10(k): -228.599 dBW/K/Hz, the "-228.6" of every link budget.
BOLTZMANN_DBW_PER_K_HZ = 10.0 * math.log10(BOLTZMANN_J_PER_K)

EARTH_MU_M3_S2 = 3.986004418e14
EARTH_EQUATORIAL_RADIUS_M = 6_378_137.0
WGS84_FLATTENING = 1.0 / 298.257223563
EARTH_J2 = 1.08262668e-3  # EGM-96/2008 unnormalised C20, sign flipped
EARTH_ROTATION_RAD_S = 7.292115146706979e-5  # Vallado's value for TEME->PEF
