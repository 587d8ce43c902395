"""`citylogin apps`: the apps that use citylogin, their metadata options and their registration tokens."""
